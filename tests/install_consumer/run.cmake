# ctest 'install_consumer': proves that an installed Soma works through find_package(soma).
#   1. cmake --install <SOMA_BUILD_DIR> into <WORK_DIR>/prefix (wiped first)
#   2. configure + build the project in this folder against that prefix only
#   3. run the consumer; it prints the sum of soma::ones({2, 2}) and exits 0 iff it is 4
# Usage (see tests/CMakeLists.txt):
#   cmake -DSOMA_BUILD_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... [-DCONFIG=Release]
#         [-DGENERATOR=Ninja] [-DCXX_COMPILER=g++] [-DEXTRA_FLAGS=...] -P run.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var SOMA_BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "install_consumer: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${prefix} ${build})

function(step name)
  message(STATUS "install_consumer: ${name}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${name} failed (${rc}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

step(install ${CMAKE_COMMAND} --install ${SOMA_BUILD_DIR} --prefix ${prefix} --config ${CONFIG})

set(configure_args -S ${CONSUMER_SOURCE_DIR} -B ${build}
    -DCMAKE_BUILD_TYPE=${CONFIG}
    -DCMAKE_PREFIX_PATH=${prefix}
    # Only the fresh prefix may satisfy find_package(soma): no user or system package registry.
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(GENERATOR)
  list(APPEND configure_args -G ${GENERATOR})
endif()
if(CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
if(EXTRA_FLAGS)
  list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${EXTRA_FLAGS}"
       "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}")
endif()
step(configure ${CMAKE_COMMAND} ${configure_args})
string(FIND "${step_output}" "soma_DIR=${prefix}/" found_in_prefix)
if(found_in_prefix EQUAL -1)
  message(FATAL_ERROR "install_consumer: soma was not found in ${prefix}:\n${step_output}")
endif()
step(build ${CMAKE_COMMAND} --build ${build} --config ${CONFIG})

find_program(consumer soma_consumer PATHS ${build} ${build}/${CONFIG} NO_DEFAULT_PATH REQUIRED)
step(run ${consumer})
message(STATUS "install_consumer: consumer said: ${step_output}")
if(NOT step_output MATCHES "sum = 4\n")
  message(FATAL_ERROR "install_consumer: expected 'sum = 4', got:\n${step_output}")
endif()
