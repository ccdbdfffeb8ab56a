# Warnings as errors everywhere, and the sanitizer / fuzzer instrumentation switches.
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
                    -Wformat=2 -Wundef -Wno-unused-parameter -fno-strict-aliasing)
if(AGX_WERROR)
  add_compile_options(-Werror)
endif()
add_compile_definitions(_GNU_SOURCE)

if(AGX_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# ThreadSanitizer: the build the engine's threaded tests run in (tests/CMakeLists.txt registers
# only those there). Exclusive with AGX_SANITIZE (ASan and TSan cannot share a process).
option(AGX_TSAN "Build with ThreadSanitizer (runs the client and engine tests only)" OFF)
if(AGX_TSAN)
  if(AGX_SANITIZE OR AGX_FUZZ)
    message(FATAL_ERROR "AGX_TSAN excludes AGX_SANITIZE and AGX_FUZZ")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()

if(AGX_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "AGX_FUZZ needs clang: configure with -DCMAKE_C_COMPILER=clang")
  endif()
  # Library code is instrumented for coverage; the fuzz executables add the libFuzzer main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
