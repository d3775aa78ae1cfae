# cmake -DGENERATOR=<make_sample_data> -DCOMMITTED=<pb> -DOUT=<tmp pb> -P check_sample_data.cmake
execute_process(COMMAND "${GENERATOR}" "${OUT}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "make_sample_data failed: ${rc}")
endif()
file(SHA256 "${OUT}" regenerated)
file(SHA256 "${COMMITTED}" committed)
if(NOT regenerated STREQUAL committed)
  message(FATAL_ERROR "examples/data/sample_tensors.pb differs from what make_sample_data writes; "
                      "regenerate it: cmake --build build --target sample_data")
endif()
message(STATUS "sample data is reproducible (${committed})")
