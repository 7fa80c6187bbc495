option(BILLING_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
add_library(billing_sanitizers INTERFACE)
if(BILLING_SANITIZE)
  target_compile_options(billing_sanitizers INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                         -fno-sanitize-recover=undefined)
  # Not position-independent: the sanitizers' data make a PIE test binary carry about 100 MB of
  # relocations that every test's process applies at start, half of a short test's time.
  target_link_options(billing_sanitizers INTERFACE -fsanitize=address,undefined -no-pie)
endif()
