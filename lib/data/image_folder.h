// ImageFolder layout: <folder>/train/<class>/*.png|jpg|jpeg and <folder>/test/<class>/...
#pragma once
#include <string>

#include "data/dataset.h"
#include "data/file_listing.h"

namespace vitlab {

// Classes are the sub-folders of train/, sorted by name; test/ may hold a subset of them. Images
// are decoded with stb_image and converted to the first training image's channel count (grey or
// grey+alpha -> 1, RGB or RGBA -> 3; alpha dropped, RGB -> grey by luma), then resized
// bilinearly to image_size x image_size, or to the first image's size when image_size is 0.
// Throws DataError naming the file or folder for missing folders, empty class folders, unknown
// test classes, undecodable or oversized images.
DatasetSplits read_image_folder(const std::string& folder, int image_size = 0);

// One image file as (C, H, W) uint8; `channels` 0 keeps the file's own (1 or 3), else 1 or 3.
torch::Tensor decode_image_file(const std::string& path, int channels = 0);
// The same for entry `i` of a listing (a file, or a member of a WebDataset shard).
torch::Tensor decode_listed_image(const FileListing& files, int64_t i, int channels = 0);

}  // namespace vitlab
