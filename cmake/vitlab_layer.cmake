# vitlab_layer(NAME [DIR folder] [DEPS layer...])
#
# One static library per layer of lib/, vitlab_<NAME>, from the .cpp files under lib/<DIR> (its
# subfolders too: the models' registered parts live in models/mixers and models/pos_embeds; DIR
# defaults to NAME) and, in the CUDA build, lib/<DIR>/cuda/*.cu. A layer without sources (a folder not filled yet,
# or headers only) is an INTERFACE library with the same include scope and dependencies.
#
# Include scope: headers are included as "<DIR>/file.h". The target publishes one include folder,
# ${CMAKE_BINARY_DIR}/layers/<NAME>, that holds a single symbolic link <DIR> -> lib/<DIR>, never
# lib/ itself. A translation unit therefore finds the headers of its own layer and of the layers it
# links (DEPS, transitively) and nothing else: an #include of a layer above or beside it fails with
# "No such file or directory". DEPS name layers below this one only, so the link graph is the
# layer order and a cycle cannot be written.
#
# Every compiled layer reuses vitlab_core's precompiled header (LibTorch, fmt, JSON), so the
# header is compiled once per build, as with a single library.
function(vitlab_layer NAME)
  cmake_parse_arguments(PARSE_ARGV 1 LAYER "" "DIR" "DEPS")
  if(NOT LAYER_DIR)
    set(LAYER_DIR ${NAME})
  endif()
  set(folder ${PROJECT_SOURCE_DIR}/lib/${LAYER_DIR})
  set(scope ${CMAKE_BINARY_DIR}/layers/${NAME})
  file(MAKE_DIRECTORY ${scope})
  file(CREATE_LINK ${folder} ${scope}/${LAYER_DIR} SYMBOLIC)

  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${folder}/*.cpp)
  if(VITLAB_WITH_CUDA)
    # Hand-written kernels: compiled by nvcc without LibTorch headers (cuda/*.h are plain C++).
    file(GLOB cuda_sources CONFIGURE_DEPENDS ${folder}/cuda/*.cu)
    set_source_files_properties(${cuda_sources} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    list(APPEND sources ${cuda_sources})
  endif()

  set(target vitlab_${NAME})
  if(sources)
    add_library(${target} STATIC ${sources})
    set(visibility PUBLIC)
  else()
    add_library(${target} INTERFACE)
    set(visibility INTERFACE)
  endif()
  target_include_directories(${target} ${visibility} ${scope})
  list(TRANSFORM LAYER_DEPS PREPEND vitlab_)
  target_link_libraries(${target} ${visibility} ${LAYER_DEPS})
  if(sources AND NOT NAME STREQUAL "core")
    target_precompile_headers(${target} REUSE_FROM vitlab_core)
  endif()
endfunction()
