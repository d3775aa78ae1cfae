# ctest -P script: the staged install holds the library with its SONAME links, the headers (the
# host-operator bridge under include/caffe2rs/ too), the
# wire schema (share/caffe2rs/caffe2.proto), the CMake package files and a pkg-config file. Usage: cmake -DPREFIX=.. -DLIBDIR=.. -DVERSION=.. -P
foreach(var PREFIX LIBDIR VERSION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_install_layout.cmake: -D${var}= is required")
  endif()
endforeach()
string(REGEX MATCH "^[0-9]+" major "${VERSION}")

set(lib "${PREFIX}/${LIBDIR}")
foreach(file
    "${lib}/libcaffe2rs.so.${VERSION}" "${lib}/libcaffe2rs.a"
    "${PREFIX}/include/caffe2rs.h" "${PREFIX}/include/caffe2rs.hpp"
    "${PREFIX}/include/caffe2rs/host_op.hpp" "${PREFIX}/include/caffe2rs/caffe2_bridge.h"
    "${lib}/cmake/caffe2rs/caffe2rs-config.cmake"
    "${lib}/cmake/caffe2rs/caffe2rs-config-version.cmake"
    "${lib}/pkgconfig/caffe2rs.pc"
    "${PREFIX}/share/caffe2rs/caffe2.proto")
  if(NOT EXISTS "${file}" OR IS_SYMLINK "${file}")
    message(FATAL_ERROR "missing or not a regular file: ${file}")
  endif()
endforeach()

# libcaffe2rs.so -> libcaffe2rs.so.0 -> libcaffe2rs.so.<version>
foreach(pair "libcaffe2rs.so.${major}=libcaffe2rs.so.${VERSION}"
             "libcaffe2rs.so=libcaffe2rs.so.${major}")
  string(REPLACE "=" ";" pair "${pair}")
  list(GET pair 0 link)
  list(GET pair 1 target)
  if(NOT IS_SYMLINK "${lib}/${link}")
    message(FATAL_ERROR "${lib}/${link} is not a symlink")
  endif()
  file(READ_SYMLINK "${lib}/${link}" got)
  if(NOT got STREQUAL target)
    message(FATAL_ERROR "${lib}/${link} points to '${got}', expected '${target}'")
  endif()
endforeach()

# The config must not hard-code the build machine's paths: everything is relative to the
# package prefix.
file(READ "${lib}/cmake/caffe2rs/caffe2rs-config.cmake" config)
foreach(needle "if(NOT TARGET caffe2rs::caffe2rs)" "PACKAGE_PREFIX_DIR" "libcaffe2rs.so.${major}"
       "caffe2rs_PROTO_FILE")
  string(FIND "${config}" "${needle}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "caffe2rs-config.cmake lacks '${needle}'")
  endif()
endforeach()
string(FIND "${config}" "${PREFIX}" at)
if(NOT at EQUAL -1)
  message(FATAL_ERROR "caffe2rs-config.cmake hard-codes the install prefix ${PREFIX}")
endif()

file(READ "${lib}/pkgconfig/caffe2rs.pc" pc)
foreach(needle "Version: ${VERSION}" "-lcaffe2rs" "\${pcfiledir}")
  string(FIND "${pc}" "${needle}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "caffe2rs.pc lacks '${needle}'")
  endif()
endforeach()

# When pkg-config is present, it must resolve the flags from the staged prefix.
find_program(PKG_CONFIG_EXE NAMES pkg-config pkgconf)
if(PKG_CONFIG_EXE)
  set(ENV{PKG_CONFIG_PATH} "${lib}/pkgconfig")
  execute_process(COMMAND "${PKG_CONFIG_EXE}" --cflags --libs caffe2rs
                  OUTPUT_VARIABLE flags RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0 OR NOT flags MATCHES "-lcaffe2rs")
    message(FATAL_ERROR "pkg-config caffe2rs failed (${rc}): ${flags}")
  endif()
  message(STATUS "pkg-config caffe2rs: ${flags}")
  execute_process(COMMAND "${PKG_CONFIG_EXE}" --variable=protofile caffe2rs
                  OUTPUT_VARIABLE protofile RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0 OR NOT EXISTS "${protofile}")
    message(FATAL_ERROR "pkg-config --variable=protofile caffe2rs gave '${protofile}' (${rc}), "
                        "which is not a file")
  endif()
endif()
message(STATUS "install layout under ${PREFIX} is complete")
