// The one translation unit that compiles stb_image's implementation.
// Images over 2^14 pixels on a side are rejected before any allocation (hostile headers).
// Only the PNG and JPEG decoders are compiled: stb picks the decoder by the file's content, not
// its name, and the others (GIF, BMP, PSD, TGA, PIC, PNM, HDR) would otherwise parse any file of
// an image folder although the folder may only hold .png/.jpg/.jpeg files.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_MAX_DIMENSIONS (1 << 14)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
