# libFuzzer targets for the parsers that read outside input (`make fuzz`, tests/fuzz/README.md).
#
# Included only with -DVITLAB_FUZZ=ON, in its own build folder configured with clang: every layer
# is compiled with libFuzzer's coverage instrumentation and ASan + UBSan, so that a bug anywhere
# below a parser is found, not only in the target's own file. The normal build never reads this.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "VITLAB_FUZZ needs clang: configure with CC=clang CXX=clang++ (as make fuzz)")
endif()

# UBSan findings abort like ASan's, so libFuzzer records them as crashes with their input.
set(VITLAB_SANITIZERS -fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
# On vitlab_core, PUBLIC: every layer and fuzz target inherits the same flags, which keeps the
# precompiled header they share valid.
target_compile_options(vitlab_core PUBLIC -fsanitize=fuzzer-no-link ${VITLAB_SANITIZERS})
target_link_options(vitlab_core PUBLIC ${VITLAB_SANITIZERS})

add_custom_target(vitlab_fuzzers)

# vitlab_fuzz_target(NAME LAYERS layer...): tests/fuzz/fuzz_NAME.cpp linked with the named
# layers only (and theirs), plus libFuzzer's main.
function(vitlab_fuzz_target NAME)
  cmake_parse_arguments(PARSE_ARGV 1 FUZZ "" "" "LAYERS")
  set(target fuzz_${NAME})
  add_executable(${target} ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_${NAME}.cpp)
  list(TRANSFORM FUZZ_LAYERS PREPEND vitlab_)
  target_link_libraries(${target} PRIVATE ${FUZZ_LAYERS})
  target_link_options(${target} PRIVATE -fsanitize=fuzzer)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests/fuzz)
  target_compile_definitions(${target} PRIVATE VITLAB_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_precompile_headers(${target} REUSE_FROM vitlab_core)
  add_dependencies(vitlab_fuzzers ${target})
endfunction()

# The config loaders check model parts, which the models layer installs (as the program does).
vitlab_fuzz_target(run_config  LAYERS config models)
vitlab_fuzz_target(sweep_spec  LAYERS experiment models)
vitlab_fuzz_target(idx         LAYERS data)
vitlab_fuzz_target(cifar       LAYERS data)
vitlab_fuzz_target(image       LAYERS data)
vitlab_fuzz_target(tar         LAYERS data)
vitlab_fuzz_target(safetensors LAYERS formats)
vitlab_fuzz_target(npy         LAYERS formats)
vitlab_fuzz_target(npz         LAYERS formats)
vitlab_fuzz_target(checkpoint  LAYERS train)

# stb_image 2.27 (Debian's) calls memcpy(NULL, src, 0) for a PNG whose first IDAT chunk is empty,
# which is legal PNG: undefined by the letter of C, harmless in fact (nothing is copied). The
# check is off for stb's one translation unit only; every other finding there stays fatal.
set_source_files_properties(${PROJECT_SOURCE_DIR}/lib/data/stb_image_impl.cpp PROPERTIES
  COMPILE_OPTIONS -fno-sanitize=nonnull-attribute SKIP_PRECOMPILE_HEADERS ON)

# --- `make test-sanitize`: Catch2 cases under the same ASan + UBSan ------------------------------
# CI's sanitizer job (README "Reliability"): the parsers', config, runner and IO test files
# (the streamed folders' decoding, listings, threaded batch stream, RandAugment and the nvJPEG
# marker scan included),
# compiled in this folder so they share the instrumented layers the fuzzers use, and run against
# this folder's instrumented `vitlab` where they start the program. The training, model and
# kernel tests are left out: under ASan they would take CI past its 90 minutes, and they read no
# outside input.
set(VITLAB_SANITIZE_TEST_FILES
  test_main test_helpers
  test_config test_data_formats test_data_readers test_streaming test_tar_shards test_rand_augment
  test_nvjpeg
  test_npz
  test_safetensors test_torch_archive
  test_weights test_weights_jax test_weights_pos_embed
  test_sweep_spec test_summary_stats test_sweep_cli)
list(TRANSFORM VITLAB_SANITIZE_TEST_FILES REPLACE "(.+)" "${PROJECT_SOURCE_DIR}/tests/\\1.cpp")
add_executable(vitlab_sanitize_tests ${VITLAB_SANITIZE_TEST_FILES})
target_link_libraries(vitlab_sanitize_tests PRIVATE vitlab_report vitlab_experiment vitlab_analysis
                                                    vitlab_train vitlab::catch2)
target_precompile_headers(vitlab_sanitize_tests REUSE_FROM vitlab_core)
target_compile_definitions(vitlab_sanitize_tests PRIVATE
  VITLAB_BINARY="$<TARGET_FILE:vitlab>"
  VITLAB_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(vitlab_sanitize_tests vitlab)
# The test writes JPEG fixtures with Debian's stb_image_write 2.27, whose bit writer left-shifts
# negative ints (stbiw__jpg_writeBits): undefined by the letter of C++17, two's complement in fact
# (and defined since C++20). Only that check, only in the fixture-writing test file.
set_source_files_properties(${PROJECT_SOURCE_DIR}/tests/test_data_formats.cpp PROPERTIES
  COMPILE_OPTIONS -fno-sanitize=shift-base SKIP_PRECOMPILE_HEADERS ON)
