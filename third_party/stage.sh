#!/usr/bin/env bash
# Copies the header-only dependencies from this Debian machine into third_party/staged/ (ignored by
# git) so they can travel to a machine without Debian packages (the GPU machine: name
# third_party/staged in the device call's carry). Also stages the Fashion-MNIST files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dst=$root/third_party/staged
rm -rf "$dst"
mkdir -p "$dst/include/stb" "$dst/include/catch2" "$dst/cmake" "$dst/data/fashion-mnist"
cp /usr/include/cxxopts.hpp "$dst/include/"
cp -r /usr/include/nlohmann "$dst/include/"
cp -r /usr/include/fmt "$dst/include/"
cp /usr/include/catch2/catch.hpp "$dst/include/catch2/"
cp /usr/include/stb/stb_image.h /usr/include/stb/stb_image_resize.h /usr/include/stb/stb_image_write.h "$dst/include/stb/"
cp /usr/include/zlib.h /usr/include/zconf.h "$dst/include/"
# TurboJPEG (libturbojpeg0-dev): its header and shared library, which needs only libc.
mkdir -p "$dst/lib"
cp /usr/include/turbojpeg.h "$dst/include/"
cp -P /usr/lib/x86_64-linux-gnu/libturbojpeg.so.0* "$dst/lib/"
ln -sf libturbojpeg.so.0 "$dst/lib/libturbojpeg.so"
# libjpeg's API from the same libjpeg-turbo (libjpeg62-turbo-dev): decoding part of a JPEG.
cp /usr/include/jpeglib.h /usr/include/jmorecfg.h /usr/include/jerror.h \
   /usr/include/x86_64-linux-gnu/jconfig.h "$dst/include/"
cp -P /usr/lib/x86_64-linux-gnu/libjpeg.so.62* "$dst/lib/"
ln -sf libjpeg.so.62 "$dst/lib/libjpeg.so"
cp /usr/lib/cmake/Catch2/Catch.cmake /usr/lib/cmake/Catch2/CatchAddTests.cmake "$dst/cmake/"
cp /usr/share/datasets/fashion-mnist/*.gz "$dst/data/fashion-mnist/"
du -sh "$dst"
