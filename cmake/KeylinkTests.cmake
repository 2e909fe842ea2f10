# kl_add_tests(LIBS lib...): every test_*.c in the calling folder becomes a program and a
# ctest test; every test_*.sh and test_*.py becomes a ctest test too. Tests get the paths
# they need through the environment, so new tests need no CMake edits:
#   KL_SHARED_DIR  the read-only shared/ folder (Wycheproof vectors)
#   KL_BIN_DIR     where the project's programs are built (keylink, keylink-se, ...)
#   KL_SRC_DIR     the source tree
# C tests also find tests/support/ on their include path: kl_test.h (CHECK, CHECK_ST, OK
# and the kl_fails counter, temp-tree removal, starting keylink-se), kl_test_se.h (device
# API helpers), kl_test_ossl.h (OpenSSL conversions).
# A test whose file starts with "// kl-labels: a;b" (or "# kl-labels: a;b") gets those
# ctest labels; label "no-asan" keeps it out of the sanitizer run (e.g. load tests).
set(KL_BIN_DIR ${CMAKE_BINARY_DIR}/bin)
set(CMAKE_RUNTIME_OUTPUT_DIRECTORY ${KL_BIN_DIR})

function(kl_add_tests)
  cmake_parse_arguments(KT "" "" "LIBS" ${ARGN})
  file(GLOB _c RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} CONFIGURE_DEPENDS test_*.c)
  file(GLOB _sh RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} CONFIGURE_DEPENDS test_*.sh)
  file(GLOB _py RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} CONFIGURE_DEPENDS test_*.py)
  set(_env "KL_SHARED_DIR=${KL_SHARED_DIR};KL_BIN_DIR=${KL_BIN_DIR};KL_SRC_DIR=${CMAKE_SOURCE_DIR}")
  foreach(f IN LISTS _c _sh _py)
    get_filename_component(name ${f} NAME_WE)
    get_filename_component(ext ${f} LAST_EXT)
    file(RELATIVE_PATH _rel ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
    string(REPLACE "/" "_" _prefix "${_rel}")
    string(REPLACE "_tests" "" _prefix "${_prefix}")
    set(tname "${_prefix}_${name}")
    if(ext STREQUAL ".c")
      add_executable(${tname} ${f})
      set_target_properties(${tname} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
      target_link_libraries(${tname} PRIVATE ${KT_LIBS})
      target_include_directories(${tname} PRIVATE ${CMAKE_SOURCE_DIR}/tests/support) # kl_test.h
      add_test(NAME ${tname} COMMAND ${tname})
    elseif(ext STREQUAL ".sh")
      add_test(NAME ${tname} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${f})
    else()
      add_test(NAME ${tname} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/${f})
    endif()
    set_tests_properties(${tname} PROPERTIES ENVIRONMENT "${_env}" TIMEOUT 600)
    file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/${f} _lab REGEX "kl-labels:" LIMIT_COUNT 1)
    if(_lab)
      string(REGEX REPLACE ".*kl-labels:[ ]*" "" _lab "${_lab}")
      set_tests_properties(${tname} PROPERTIES LABELS "${_lab}")
    endif()
  endforeach()
endfunction()
