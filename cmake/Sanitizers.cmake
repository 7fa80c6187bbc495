option(BILLING_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
add_library(billing_sanitizers INTERFACE)
if(BILLING_SANITIZE)
  target_compile_options(billing_sanitizers INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                         -fno-sanitize-recover=undefined)
  target_link_options(billing_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
