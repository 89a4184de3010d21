#include "report/html.h"

#include <fmt/format.h>

#include "core/atomic_file.h"

namespace vitlab {

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64_encode(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += alphabet[(v >> shift) & 63];
  }
  if (i < bytes.size()) {  // one or two bytes left: pad to four characters
    const bool two = i + 1 < bytes.size();
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | (two ? uint32_t(uint8_t(bytes[i + 1])) << 8 : 0);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += two ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string png_img_tag(const std::string& png_file, const std::string& alt, int max_width) {
  const std::string style = max_width > 0 ? fmt::format(" style=\"max-width:{}px\"", max_width) : "";
  return fmt::format("<img alt=\"{}\"{} src=\"data:image/png;base64,{}\">", escape_html(alt), style,
                     base64_encode(read_file(png_file)));
}

std::string html_table(const std::vector<std::vector<std::string>>& cells, size_t numeric_from) {
  std::string out = "<table>\n";
  for (size_t r = 0; r < cells.size(); ++r) {
    out += "<tr>";
    for (size_t c = 0; c < cells[r].size(); ++c) {
      const char* tag = r == 0 ? "th" : "td";
      out += fmt::format("<{}{}>{}</{}>", tag, c >= numeric_from ? " class=\"num\"" : "",
                         escape_html(cells[r][c]), tag);
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

}  // namespace vitlab
