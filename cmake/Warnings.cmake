option(BILLING_WERROR "Treat warnings as errors" ON)
add_library(billing_warnings INTERFACE)
target_compile_options(billing_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wno-missing-field-initializers
                       $<$<BOOL:${BILLING_WERROR}>:-Werror>)
