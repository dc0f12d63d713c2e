# anvil_add_test(NAME LABEL label COMMAND cmd...): registers a CTest test that is reported
# skipped only on the exit status support/gtest_main.cpp gives when every test that ran
# skipped. Used by tests/CMakeLists.txt and by the harness self-test (harness/project), so
# the self-test checks the very properties the suite runs under.
set(ANVIL_SKIP_EXIT_CODE 77)  # support/exit_codes.h's kSkipExitCode

function(anvil_add_test name)
  cmake_parse_arguments(T "" "LABEL" "COMMAND" ${ARGN})
  add_test(NAME ${name} COMMAND ${T_COMMAND})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "ANVIL_PYTHON=${ANVIL_PYTHON};OMP_NUM_THREADS=2"
    TIMEOUT 900
    SKIP_RETURN_CODE ${ANVIL_SKIP_EXIT_CODE}
    LABELS ${T_LABEL})
endfunction()
