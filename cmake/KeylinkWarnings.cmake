# Warnings are bugs: every target in the tree builds with these.
add_compile_options(-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
                    -Wpointer-arith -Wformat=2 -Wvla)
add_compile_definitions(_POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
