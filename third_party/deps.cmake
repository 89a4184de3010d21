# How the non-LibTorch dependencies are found.
#
# Debian 12 (developers, CI): the packages named in the Makefile, found with find_package.
# GPU machine (no Debian packages, no network): third_party/stage.sh copies the header-only
# dependencies from a Debian machine into third_party/staged/, which travels with the source tree;
# when that folder exists it is used instead. fmt is then header-only (FMT_HEADER_ONLY).
set(VITLAB_STAGED_DIR ${PROJECT_SOURCE_DIR}/third_party/staged)
add_library(vitlab_deps INTERFACE)
add_library(vitlab::deps ALIAS vitlab_deps)
add_library(vitlab_catch2 INTERFACE)
add_library(vitlab::catch2 ALIAS vitlab_catch2)

# Debian packages win when present, so a staged folder left in a checkout never changes the
# developer/CI build; staged headers are the fallback for machines without them.
# (Some Python wheels ship CMake configs of nlohmann/fmt, so the test is the whole set.)
find_package(nlohmann_json 3 QUIET)
find_package(cxxopts QUIET)
find_package(fmt QUIET)
find_package(Catch2 2 QUIET)
find_path(VITLAB_STB_DIR stb_image.h PATH_SUFFIXES stb)
set(VITLAB_SYSTEM_DEPS OFF)
if(nlohmann_json_FOUND AND cxxopts_FOUND AND fmt_FOUND AND Catch2_FOUND AND VITLAB_STB_DIR)
  set(VITLAB_SYSTEM_DEPS ON)
endif()
if(NOT VITLAB_SYSTEM_DEPS AND EXISTS ${VITLAB_STAGED_DIR}/include/nlohmann/json.hpp)
  message(STATUS "vitlab: using staged header-only dependencies from ${VITLAB_STAGED_DIR}")
  target_include_directories(vitlab_deps SYSTEM INTERFACE ${VITLAB_STAGED_DIR}/include)
  target_compile_definitions(vitlab_deps INTERFACE FMT_HEADER_ONLY=1)
  target_include_directories(vitlab_catch2 SYSTEM INTERFACE ${VITLAB_STAGED_DIR}/include)
  list(APPEND CMAKE_MODULE_PATH ${VITLAB_STAGED_DIR}/cmake)
  # zlib: headers are staged; the shared library ships with every Linux image.
  find_library(VITLAB_ZLIB NAMES z libz.so.1 REQUIRED)
  target_link_libraries(vitlab_deps INTERFACE ${VITLAB_ZLIB})
else()
  find_package(cxxopts REQUIRED)
  find_package(nlohmann_json 3 REQUIRED)
  find_package(fmt REQUIRED)
  find_package(ZLIB REQUIRED)
  target_link_libraries(vitlab_deps INTERFACE cxxopts::cxxopts nlohmann_json::nlohmann_json
                                              fmt::fmt ZLIB::ZLIB)
  # libzip reads .npz checkpoints (the JAX ViT weights). Optional: without it (as in the staged
  # GPU build) .npz import throws a clear IoError instead. Found by header and library rather
  # than find_package(libzip): Debian 12's libzip-config.cmake fails hard unless the separate
  # zipcmp/zipmerge/ziptool binaries are installed too.
  find_path(VITLAB_LIBZIP_INCLUDE zip.h)
  find_library(VITLAB_LIBZIP_LIBRARY NAMES zip)
  if(VITLAB_LIBZIP_INCLUDE AND VITLAB_LIBZIP_LIBRARY)
    target_include_directories(vitlab_deps SYSTEM INTERFACE ${VITLAB_LIBZIP_INCLUDE})
    target_link_libraries(vitlab_deps INTERFACE ${VITLAB_LIBZIP_LIBRARY})
    target_compile_definitions(vitlab_deps INTERFACE VITLAB_HAVE_LIBZIP=1)
  else()
    message(STATUS "vitlab: libzip not found; .npz import disabled")
  endif()
  find_path(VITLAB_STB_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
  target_include_directories(vitlab_deps SYSTEM INTERFACE ${VITLAB_STB_DIR}/..)
  if(VITLAB_BUILD_TESTS)
    find_package(Catch2 2 REQUIRED)
    target_link_libraries(vitlab_catch2 INTERFACE Catch2::Catch2)
  endif()
endif()

# libjpeg-turbo's TurboJPEG API decodes JPEGs for streamed image folders (Debian's
# libturbojpeg0-dev; stage.sh stages its header and shared library for the GPU machine). Optional:
# without it JPEGs are decoded by stb_image, with no DCT-domain downscaling.
find_path(VITLAB_TURBOJPEG_INCLUDE turbojpeg.h HINTS ${VITLAB_STAGED_DIR}/include)
find_library(VITLAB_TURBOJPEG_LIBRARY NAMES turbojpeg libturbojpeg.so.0 HINTS ${VITLAB_STAGED_DIR}/lib)
if(VITLAB_TURBOJPEG_INCLUDE AND VITLAB_TURBOJPEG_LIBRARY)
  target_include_directories(vitlab_deps SYSTEM INTERFACE ${VITLAB_TURBOJPEG_INCLUDE})
  target_link_libraries(vitlab_deps INTERFACE ${VITLAB_TURBOJPEG_LIBRARY})
  target_compile_definitions(vitlab_deps INTERFACE VITLAB_HAVE_TURBOJPEG=1)
else()
  message(STATUS "vitlab: TurboJPEG not found; JPEGs are decoded by stb_image")
endif()

# libjpeg's own API from the same libjpeg-turbo (Debian's libjpeg62-turbo-dev; staged likewise):
# decoding only the part of a JPEG a crop needs (lib/data/jpeg_region.h). Optional: without it
# JPEGs are decoded whole.
find_path(VITLAB_LIBJPEG_INCLUDE jpeglib.h HINTS ${VITLAB_STAGED_DIR}/include)
find_library(VITLAB_LIBJPEG_LIBRARY NAMES jpeg libjpeg.so.62 HINTS ${VITLAB_STAGED_DIR}/lib)
if(VITLAB_LIBJPEG_INCLUDE AND VITLAB_LIBJPEG_LIBRARY)
  target_include_directories(vitlab_deps SYSTEM INTERFACE ${VITLAB_LIBJPEG_INCLUDE})
  target_link_libraries(vitlab_deps INTERFACE ${VITLAB_LIBJPEG_LIBRARY})
  target_compile_definitions(vitlab_deps INTERFACE VITLAB_HAVE_LIBJPEG=1)
else()
  message(STATUS "vitlab: libjpeg not found; JPEGs are decoded whole")
endif()

# Threads for the sweep runner's job control.
find_package(Threads REQUIRED)
target_link_libraries(vitlab_deps INTERFACE Threads::Threads)
