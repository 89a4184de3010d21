// WebDataset shards as a split of an image folder: <root>/<split>/*.tar, each tar holding samples
// as consecutive members that share a key (the member's path up to the first '.' of its file
// name), an image (.jpg, .jpeg or .png, the last part of the rest) and its class index as
// decimal text (.cls), the layout in
// which WebDataset's ImageNet shards are written. The shards are listed once, like a folder: each
// sample becomes an entry of a FileListing whose file is the shard, with the image's byte range
// in it, so the streaming and in-memory readers take shards and folders alike.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/file_listing.h"

namespace vitlab {

// Whether `split_dir` holds .tar files and no sub-folders (a folder with both is a DataError
// naming it: which of the two is the split is not clear).
bool is_shard_split(const std::string& split_dir);

// One member of a tar file: its path in the archive and its data's byte range in the file.
struct TarMember {
  std::string name;
  int64_t offset = 0;
  int64_t size = 0;
};

// The regular files of the tar at `path`, in archive order: ustar and GNU tar headers, GNU long
// names and pax "path" records. `on_member` may read the member's data from `in`, which is
// positioned at its start. DataError naming `path` and the byte for a header whose checksum is
// wrong, and for a file that ends inside a member or before the end-of-archive blocks.
void scan_tar(const std::string& path,
              const std::function<void(const TarMember&, std::istream& in)>& on_member);

// The samples of <root>/<split>/*.tar (shards in name order, samples in archive order). Without
// `classes` the labels 0..K-1 name the classes "0".."K-1", K being one more than the largest
// label; with them every label must be below their count. DataError naming the shard and the
// key for a sample without an image or without a readable .cls, or with a label out of range.
// `progress(samples so far)` is called every 5,000 samples and at the end.
FileListing list_shard_split(const std::string& root, const std::string& split,
                             const std::vector<std::string>* classes,
                             const std::function<void(int64_t)>& progress);

}  // namespace vitlab
