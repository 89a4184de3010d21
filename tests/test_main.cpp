// The test runner's main. Tests that need CUDA are tagged [cuda] and skip themselves on CPU.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
