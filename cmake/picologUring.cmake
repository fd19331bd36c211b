# SPDX-License-Identifier: MIT
# picolog::uring: liburing, found through pkg-config when it is there, else
# by searching for liburing.h and the library.
if(NOT TARGET picolog::uring)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(PICOLOG_PC_URING QUIET liburing)
  endif()
  find_path(PICOLOG_URING_INCLUDE_DIR liburing.h HINTS ${PICOLOG_PC_URING_INCLUDE_DIRS})
  find_library(PICOLOG_URING_LIBRARY uring HINTS ${PICOLOG_PC_URING_LIBRARY_DIRS})
  if(NOT PICOLOG_URING_INCLUDE_DIR OR NOT PICOLOG_URING_LIBRARY)
    message(FATAL_ERROR "picolog: liburing not found (Debian/Ubuntu: apt-get install liburing-dev)")
  endif()
  add_library(picolog::uring UNKNOWN IMPORTED GLOBAL)
  set_target_properties(picolog::uring PROPERTIES
    IMPORTED_LOCATION "${PICOLOG_URING_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${PICOLOG_URING_INCLUDE_DIR}")
endif()
