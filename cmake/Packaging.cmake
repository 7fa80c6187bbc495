# `cpack -G DEB` in a build directory makes billing_<version>_amd64.deb: the binary, the catalog
# and an environment template, a systemd unit, and maintainer scripts that add the billing user,
# /var/lib/billing and /etc/billing/billing.env with fresh secrets (see deploy/ and README.md,
# Installing). tests/package/test_deb.sh installs it into a clean Debian 12 root.
# Packaging needs the binary only: cpack (and `ninja install`) must not build the tests and
# benchmarks first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
install(TARGETS billing RUNTIME DESTINATION bin)
install(FILES config/plans.json DESTINATION /etc/billing)
install(FILES deploy/billing.env.in DESTINATION share/billing)
install(FILES deploy/billing.service DESTINATION /lib/systemd/system)
install(FILES README.md DESTINATION share/doc/billing)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME billing)
set(CPACK_PACKAGE_VENDOR "billing")
set(CPACK_PACKAGE_CONTACT "billing maintainers <billing@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "subscription billing service for the healthcare platform")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# The runtime libraries from what the binary links (dpkg-shlibdeps), and adduser for postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
    ${PROJECT_SOURCE_DIR}/deploy/debian/prerm ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
