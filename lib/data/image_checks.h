// Checks on image files that Debian 12's stb_image (2.27) leaves out, made before stb sees the
// bytes. Found by fuzzing (tests/fuzz/fuzz_image.cpp): stb trusts sizes in headers and allocates
// or decodes them in full, and writes past a JPEG Huffman table with too many symbols (fixed
// upstream in 2.28). None of the checks can refuse a complete, valid file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace vitlab {

// Where a JPEG's SOI marker (0xFF 0xD8) starts, as stb finds it: after any 0xFF fill bytes
// before it, which stb (like the standard) skips and libjpeg does not. -1 when `bytes` do not
// start so, i.e. are no JPEG to stb.
int64_t jpeg_soi_offset(const std::vector<uint8_t>& bytes);

// Throws DataError naming `path` for a PNG whose chunks run past the end of the file or whose
// rows need more bytes than its compressed data can inflate to, and for a JPEG with a Huffman
// table of over 256 symbols or more pixels than its bytes can code. Other files pass unchecked.
void check_image_bytes(const std::vector<uint8_t>& bytes, const std::string& path);

}  // namespace vitlab
