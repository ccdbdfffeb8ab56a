# The C side of the E2B and Daytona fakes (tests/fakes/*/fake_*.py): starts a fake, drives its
# control endpoints and runs the session workload. Included by tests/e2b and tests/daytona (they
# are configured before a tests/fakes folder would be, so this is a file to include, not a folder).
include_guard(GLOBAL)
find_program(AGX_PYTHON3 NAMES python3)
# The official specs, verbatim copies kept in tests/fakes/specs (see SOURCES.md there).
set(AGX_CLOUD_SPEC_DIR "${CMAKE_CURRENT_LIST_DIR}/specs" CACHE PATH
    "Folder with the official e2b-openapi.yml and daytona-openapi.yaml the fakes check against")
add_library(agx_fake_harness STATIC "${CMAKE_CURRENT_LIST_DIR}/common/fake_harness.c")
target_include_directories(agx_fake_harness
  PUBLIC "${CMAKE_CURRENT_LIST_DIR}/common" "${PROJECT_SOURCE_DIR}/tests/support"
  PRIVATE "${PROJECT_SOURCE_DIR}")
target_link_libraries(agx_fake_harness PUBLIC agentix PkgConfig::AGX_JANSSON Threads::Threads)
target_compile_definitions(agx_fake_harness PRIVATE AGX_PYTHON3="${AGX_PYTHON3}")

# agx_add_cloud_test(NAME test_e2b SOURCES … FAKE script SCENARIOS a b … [TIMEOUT s])
# One program, one CTest test per scenario (label cloud): the first is NAME (also run under
# valgrind as NAME.valgrind), the others NAME_<scenario>.
function(agx_add_cloud_test)
  cmake_parse_arguments(C "" "NAME;FAKE;TIMEOUT" "SOURCES;SCENARIOS;BACKENDS" ${ARGN})
  list(GET C_SCENARIOS 0 first)
  agx_add_test(NAME ${C_NAME} SOURCES ${C_SOURCES} LIBS agx_fake_harness ARGS ${first}
               LABELS cloud TIMEOUT ${C_TIMEOUT} VALGRIND)
  target_compile_definitions(${C_NAME} PRIVATE
    AGX_FAKE_SCRIPT="${C_FAKE}"
    AGX_TEST_SERVER="${AGX_BUILD_RUNTIMEDIR}/agentix-server"
    AGX_TEST_MODULEDIR="${PROJECT_BINARY_DIR}/tests/modules"
    AGX_SPEC_DIR="${AGX_CLOUD_SPEC_DIR}"
    AGX_MAKE_TEST_CA="${PROJECT_SOURCE_DIR}/tests/support/make_test_ca.sh")
  foreach(dep ${C_BACKENDS} agentix-server agentix-worker agxmod_demo)
    if(TARGET ${dep})
      add_dependencies(${C_NAME} ${dep})
    endif()
  endforeach()
  list(REMOVE_AT C_SCENARIOS 0)
  foreach(s ${C_SCENARIOS})
    add_test(NAME ${C_NAME}_${s} COMMAND ${C_NAME} ${s})
    set_tests_properties(${C_NAME}_${s} PROPERTIES TIMEOUT ${C_TIMEOUT} LABELS cloud)
  endforeach()
endfunction()
