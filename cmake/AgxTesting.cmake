# agx_add_test(NAME n SOURCES a.c [LIBS ...] [LABELS ...] [TIMEOUT s] [ENV K=V ...] [ARGS ...]
#              [VALGRIND])
# Builds a C test program against libagentix and tests/support, and registers it with CTest.
# VALGRIND also registers n.valgrind (label valgrind): the same program under memcheck, failing on
# any error or definite/indirect leak. Only in builds without sanitizers.
find_program(AGX_VALGRIND valgrind)
function(agx_add_test)
  cmake_parse_arguments(T "VALGRIND" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ENV;ARGS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_include_directories(${T_NAME} PRIVATE "${PROJECT_SOURCE_DIR}/tests/support" "${PROJECT_SOURCE_DIR}")
  target_link_libraries(${T_NAME} PRIVATE agentix Threads::Threads ${CMAKE_DL_LIBS} ${T_LIBS})
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests/bin")
  add_test(NAME ${T_NAME} COMMAND ${T_NAME} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
  if(T_ENV)
    set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${T_ENV}")
  endif()
  if(T_VALGRIND AND AGX_VALGRIND AND NOT AGX_SANITIZE AND NOT AGX_FUZZ)
    add_test(NAME ${T_NAME}.valgrind
             COMMAND ${AGX_VALGRIND} --error-exitcode=99 --leak-check=full
                     --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
                     --track-fds=no --quiet $<TARGET_FILE:${T_NAME}> ${T_ARGS})
    math(EXPR vg_timeout "${T_TIMEOUT} * 4")
    set_tests_properties(${T_NAME}.valgrind PROPERTIES TIMEOUT ${vg_timeout} LABELS "valgrind")
    if(T_ENV)
      set_tests_properties(${T_NAME}.valgrind PROPERTIES ENVIRONMENT "${T_ENV}")
    endif()
  endif()
endfunction()
