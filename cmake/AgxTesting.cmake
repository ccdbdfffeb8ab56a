# smoke: value codecs, discovery, sessions, the local backend's lifecycle, the README's demo calls
# and the exports and state checks — what a build with another compiler or optimisation level
# most likely breaks, in a few minutes (scripts/run-tests.sh runs them in its Release and clang
# builds). Each is labelled where it is registered (agx_smoke_label); a name missing at the end
# of configuration fails it (agx_smoke_check).
set(AGX_SMOKE_TESTS test_value_tree test_value_msgpack test_value_json test_discovery
    test_manifest test_session test_local example_hello exports single_state)
function(agx_smoke_label name)
  if(name IN_LIST AGX_SMOKE_TESTS)
    set_property(TEST ${name} APPEND PROPERTY LABELS smoke)
    set_property(GLOBAL APPEND PROPERTY AGX_SMOKE_FOUND ${name})
  endif()
endfunction()
function(agx_smoke_check)
  get_property(found GLOBAL PROPERTY AGX_SMOKE_FOUND)
  foreach(t ${AGX_SMOKE_TESTS})
    if(NOT t IN_LIST found)
      message(FATAL_ERROR "smoke test ${t} is not registered: update cmake/AgxTesting.cmake")
    endif()
  endforeach()
endfunction()

# Which library a test program links: libagentix, unless it links the host library's internals
# (agx_host, agx_fleet: the plugin and owner registries) statically — then libagentix-runtime, so
# no process holds two copies of that state. Tests of other internals link their support library
# (agx_transport, agx_wire, agx_server, agx_bundle, …) next to libagentix: those hold no state.
set(AGX_HOST_INTERNALS agx_host agx_fleet)
function(agx_test_base_library out libs)
  set(base agentix)
  foreach(lib ${libs})
    if(lib IN_LIST AGX_HOST_INTERNALS)
      set(base agentix-runtime)
    endif()
  endforeach()
  if(base STREQUAL "agentix-runtime" AND "agentix" IN_LIST libs)
    message(FATAL_ERROR "a test links both libagentix and its internals (${libs}): two registries")
  endif()
  set(${out} ${base} PARENT_SCOPE)
endfunction()

# agx_add_test(NAME n SOURCES a.c [LIBS ...] [LABELS ...] [TIMEOUT s] [ENV K=V ...] [ARGS ...]
#              [VALGRIND])
# Builds a C test program against libagentix (see above) and tests/support, and registers it with
# CTest. Every test without LABELS is labelled unit. VALGRIND also registers n.valgrind (label
# valgrind): the same program under memcheck, failing on any error or definite/indirect leak.
# Only in builds without sanitizers.
find_program(AGX_VALGRIND valgrind)
# The tag of the Docker images tests and benchmarks build, one per build tree: two trees sharing a
# dockerd (a developer's release and sanitizer trees, checkouts side by side, parallel jobs) never
# rebuild — and retire the carriers of — each other's bundles mid-run. AGX_TEST_BUNDLE_TAG in C.
string(MD5 agx_tree_hash "${PROJECT_BINARY_DIR}")
string(SUBSTRING "${agx_tree_hash}" 0 12 agx_tree_hash)
set(AGX_TEST_BUNDLE_TAG "t${agx_tree_hash}")
# How every valgrind run is made: memcheck, failing on any error or definite/indirect leak.
set(AGX_MEMCHECK ${AGX_VALGRIND} --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --track-fds=no
    --quiet)
list(JOIN AGX_MEMCHECK " " AGX_MEMCHECK_LINE) # the same, as one string for wrapper variables

# agx_test_env(name): the environment every test needs in this build — in the ThreadSanitizer
# build, stop at the first report (a test with a report fails) and read the reviewed suppressions
# (tests/tsan.supp: frames inside uninstrumented Debian libraries only).
function(agx_test_env name)
  if(AGX_TSAN)
    set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT
      "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp")
  endif()
endfunction()

function(agx_add_test)
  cmake_parse_arguments(T "VALGRIND" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ENV;ARGS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_include_directories(${T_NAME} PRIVATE "${PROJECT_SOURCE_DIR}/tests/support" "${PROJECT_SOURCE_DIR}")
  agx_test_base_library(base "${T_LIBS}")
  target_link_libraries(${T_NAME} PRIVATE ${base} Threads::Threads ${CMAKE_DL_LIBS} ${T_LIBS})
  target_compile_definitions(${T_NAME} PRIVATE AGX_TEST_BUNDLE_TAG="${AGX_TEST_BUNDLE_TAG}")
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests/bin")
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
  agx_smoke_label(${T_NAME})
  if(T_ENV)
    set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${T_ENV}")
  endif()
  agx_test_env(${T_NAME})
  if(T_VALGRIND AND AGX_VALGRIND AND NOT AGX_SANITIZE AND NOT AGX_FUZZ AND NOT AGX_TSAN)
    add_test(NAME ${T_NAME}.valgrind COMMAND ${AGX_MEMCHECK} $<TARGET_FILE:${T_NAME}> ${T_ARGS})
    math(EXPR vg_timeout "${T_TIMEOUT} * 4")
    set_tests_properties(${T_NAME}.valgrind PROPERTIES TIMEOUT ${vg_timeout} LABELS "valgrind")
    if(T_ENV)
      set_tests_properties(${T_NAME}.valgrind PROPERTIES ENVIRONMENT "${T_ENV}")
    endif()
  endif()
endfunction()

# agx_add_fuzzer(NAME n SOURCES f.c [SEEDS dir] [SECONDS s] [LIBS ...])
# A libFuzzer target (LLVMFuzzerTestOneInput) and a CTest run of it for SECONDS (default 15) that
# starts from the committed seed folder, working on a copy so the source tree is never written.
set(AGX_FUZZ_SECONDS 15 CACHE STRING "How long each fuzz target runs in the test suite")
function(agx_add_fuzzer)
  cmake_parse_arguments(F "" "NAME;SEEDS;SECONDS" "SOURCES;LIBS" ${ARGN})
  if(NOT F_SECONDS)
    set(F_SECONDS ${AGX_FUZZ_SECONDS})
  endif()
  add_executable(${F_NAME} ${F_SOURCES})
  target_include_directories(${F_NAME} PRIVATE "${PROJECT_SOURCE_DIR}" "${PROJECT_SOURCE_DIR}/tests/support")
  agx_test_base_library(base "${F_LIBS}")
  target_link_libraries(${F_NAME} PRIVATE ${base} ${F_LIBS})
  target_link_options(${F_NAME} PRIVATE -fsanitize=fuzzer)
  set_target_properties(${F_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests/fuzz")
  set(work "${PROJECT_BINARY_DIR}/tests/fuzz/${F_NAME}.corpus")
  set(seed_arg "")
  if(F_SEEDS)
    set(seed_arg "${F_SEEDS}")
  endif()
  add_test(NAME ${F_NAME}
           COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
                   sh -c "mkdir -p '${work}' && exec \"$0\" -max_total_time=${F_SECONDS} -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 '${work}' ${seed_arg}"
                   $<TARGET_FILE:${F_NAME}>)
  math(EXPR to "${F_SECONDS} * 3 + 60")
  set_tests_properties(${F_NAME} PROPERTIES TIMEOUT ${to} LABELS fuzz)
endfunction()
