/* PredTuner's data sets: headerless little-endian float32 images (N, C, H, W) and int32 labels,
 * memory-mapped so a 50,000-image ImageNet set costs no copy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "predtuner/io.h"

void pt_dataset_close(pt_dataset *ds) {
  if (!ds) return;
  pt__unmap_file(ds->map_images, ds->map_images_len);
  pt__unmap_file(ds->map_labels, ds->map_labels_len);
  free(ds);
}

pt_status pt_dataset_open_files(const char *images_path, const char *labels_path, int c, int h, int w,
                                int num_classes, int64_t offset, int64_t count, pt_dataset **out) {
  *out = NULL;
  if (c <= 0 || h <= 0 || w <= 0) return pt__error(PT_EINVAL, "%s: bad image shape %dx%dx%d", images_path, c, h, w);
  if (offset < 0) return pt__error(PT_EINVAL, "%s: negative offset %lld", images_path, (long long)offset);
  pt_dataset *ds = pt__calloc(1, sizeof *ds);
  if (!ds) return pt__error(PT_ENOMEM, "%s: out of memory", images_path);
  ds->c = c;
  ds->h = h;
  ds->w = w;
  pt_status s = pt__map_file(images_path, &ds->map_images, &ds->map_images_len);
  if (s == PT_OK) s = pt__map_file(labels_path, &ds->map_labels, &ds->map_labels_len);
  if (s != PT_OK) goto fail;
  size_t img_bytes = (size_t)c * h * w * sizeof(float);
  if (ds->map_images_len % img_bytes) {
    s = pt__error(PT_EFORMAT, "%s: %zu bytes is not a whole number of %dx%dx%d float32 images (%zu bytes each)",
                  images_path, ds->map_images_len, c, h, w, img_bytes);
    goto fail;
  }
  if (ds->map_labels_len % sizeof(int32_t)) {
    s = pt__error(PT_EFORMAT, "%s: %zu bytes is not a whole number of int32 labels", labels_path, ds->map_labels_len);
    goto fail;
  }
  int64_t n_img = (int64_t)(ds->map_images_len / img_bytes), n_lab = (int64_t)(ds->map_labels_len / sizeof(int32_t));
  if (n_img != n_lab) {
    s = pt__error(PT_EFORMAT, "%s: %lld labels for %lld images in %s", labels_path, (long long)n_lab, (long long)n_img,
                  images_path);
    goto fail;
  }
  if (n_img == 0) {
    s = pt__error(PT_EFORMAT, "%s: empty data set", images_path);
    goto fail;
  }
  if (offset >= n_img || (count >= 0 && (count == 0 || offset + count > n_img))) {
    if (count < 0)
      s = pt__error(PT_ERANGE, "%s: offset %lld does not fit in %lld images", images_path, (long long)offset,
                    (long long)n_img);
    else
      s = pt__error(PT_ERANGE, "%s: offset %lld and count %lld do not fit in %lld images", images_path,
                    (long long)offset, (long long)count, (long long)n_img);
    goto fail;
  }
  ds->n = count < 0 ? n_img - offset : count;
  ds->first = offset;
  ds->images = (const float *)ds->map_images + offset * (int64_t)c * h * w;
  ds->labels = (const int32_t *)ds->map_labels + offset;
  for (int64_t i = 0; i < ds->n; i++)
    if (ds->labels[i] < 0 || ds->labels[i] >= num_classes) {
      s = pt__error(PT_ERANGE, "%s: label %d of image %lld is outside [0, %d)", labels_path, (int)ds->labels[i],
                    (long long)(offset + i), num_classes);
      goto fail;
    }
  const int64_t per = (int64_t)c * h * w;
  for (int64_t i = 0; i < ds->n * per; i++) /* a NaN or infinite pixel makes every QoS on it meaningless */
    if (!isfinite(ds->images[i])) {
      s = pt__error(PT_ENONFINITE, "%s: image %lld holds %s at value %lld", images_path, (long long)(offset + i / per),
                    isnan(ds->images[i]) ? "NaN" : "an infinity", (long long)(i % per));
      goto fail;
    }
  *out = ds;
  return PT_OK;
fail:
  pt_dataset_close(ds);
  return s;
}

pt_status pt_dataset_open(const char *dir, const char *split, int c, int h, int w, int num_classes, int64_t offset,
                          int64_t count, pt_dataset **out) {
  char ip[4096], lp[4096];
  snprintf(ip, sizeof ip, "%s/%s_input.bin", dir, split);
  snprintf(lp, sizeof lp, "%s/%s_labels.bin", dir, split);
  return pt_dataset_open_files(ip, lp, c, h, w, num_classes, offset, count, out);
}
