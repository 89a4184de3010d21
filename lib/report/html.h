// Pieces of a self-contained HTML page: escaping, tables, and images embedded as data: URIs (the
// report must load nothing from anywhere, not even from beside it).
#pragma once
#include <string>
#include <vector>

namespace vitlab {

// &, <, >, " and ' as entities: safe in element text and in quoted attributes, HTML and SVG alike.
std::string escape_html(const std::string& text);

// RFC 4648 base64, with padding.
std::string base64_encode(const std::string& bytes);

// <img> with the PNG file's bytes inline. IoError naming the file when it cannot be read.
std::string png_img_tag(const std::string& png_file, const std::string& alt, int max_width = 0);

// A <table>: the first row is the header; cells are text (escaped here). `numeric_from`: columns
// from this index on are right-aligned.
std::string html_table(const std::vector<std::vector<std::string>>& cells, size_t numeric_from = 1);

}  // namespace vitlab
