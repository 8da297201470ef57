/* File formats: safetensors (weights and model caches), PyTorch checkpoints, PredTuner's binary data
 * sets, knob and config files. Every error message names the file and the problem. */
#ifndef PREDTUNER_IO_H
#define PREDTUNER_IO_H

#include <stddef.h>
#include <stdint.h>

#include "predtuner/graph.h"
#include "predtuner/knobs.h"
#include "predtuner/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- safetensors reader (memory-mapped) ---- */
typedef struct pt_safetensors pt_safetensors;

/* Validates the whole header: length, JSON, dtypes, shapes, offsets in range and not overlapping. */
pt_status pt_st_open(const char *path, pt_safetensors **out);
void pt_st_close(pt_safetensors *st);
int pt_st_count(const pt_safetensors *st);
const char *pt_st_name(const pt_safetensors *st, int i);
/* "F32", "F16", "BF16", "I64", ... as written in the file. */
const char *pt_st_dtype(const pt_safetensors *st, int i);
int pt_st_is_float(const pt_safetensors *st, int i);
int pt_st_shape(const pt_safetensors *st, int i, int64_t shape[PT_MAX_DIMS]);
int pt_st_find(const pt_safetensors *st, const char *name);
/* Converts tensor i (F32, F16 or BF16) to float32 into dst, which holds its element count. */
pt_status pt_st_read_f32(const pt_safetensors *st, int i, float *dst);
/* Value of a string in __metadata__, or NULL. */
const char *pt_st_metadata(const pt_safetensors *st, const char *key);

/* ---- safetensors writer (atomic: temp file + rename) ---- */
typedef struct pt_st_writer pt_st_writer;
pt_status pt_st_writer_new(pt_st_writer **out);
/* Copies t's data. Names must be unique. */
pt_status pt_st_writer_add(pt_st_writer *w, const char *name, const pt_tensor *t);
pt_status pt_st_writer_metadata(pt_st_writer *w, const char *key, const char *value);
pt_status pt_st_writer_save(pt_st_writer *w, const char *path);
void pt_st_writer_free(pt_st_writer *w);

/* ---- PyTorch checkpoints (torch.save; memory-mapped) ---- */
typedef struct pt_pth pt_pth;

/* Opens a torch.save file: the zip format (torch >= 1.6) or the legacy one. The state_dict is the
 * top-level dict of tensors, or the one under "state_dict", "model_state_dict", "model_state",
 * "model", "net" or "state" of a checkpoint dict; a "module." prefix on every key is dropped. Every
 * tensor is checked: float or integer dtype, contiguous, inside its storage (docs/pth.md). */
pt_status pt_pth_open(const char *path, pt_pth **out);
/* The same over bytes in memory (kept by the caller until pt_pth_close); what names them in errors. */
pt_status pt_pth_open_buffer(const void *data, size_t len, const char *what, pt_pth **out);
void pt_pth_close(pt_pth *p);
int pt_pth_count(const pt_pth *p);
const char *pt_pth_name(const pt_pth *p, int i);
/* "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL". */
const char *pt_pth_dtype(const pt_pth *p, int i);
int pt_pth_is_float(const pt_pth *p, int i);
int pt_pth_shape(const pt_pth *p, int i, int64_t shape[PT_MAX_DIMS]);
int pt_pth_find(const pt_pth *p, const char *name);
/* Converts float tensor i to float32 into dst (its element count). */
pt_status pt_pth_read_f32(const pt_pth *p, int i, float *dst);

/* Loads a network's weights from a safetensors file or a PyTorch checkpoint (told apart by their
 * first bytes, whatever the file name) whose keys are the PyTorch state_dict keys.
 * Missing key, unexpected key, wrong shape or non-float dtype is an error naming the key (and both
 * shapes); integer bookkeeping tensors named *num_batches_tracked are ignored. */
pt_status pt_weights_load(pt_graph *g, const char *path);
/* Writes g's weights (all loaded) as float32 (or float16 when f16) safetensors. */
pt_status pt_weights_save(const pt_graph *g, const char *path, int f16);

/* ---- PredTuner data sets: raw little-endian float32 (N, C, H, W) images, int32 labels ---- */
typedef struct pt_dataset {
  const float *images;   /* (n, c, h, w), memory-mapped */
  const int32_t *labels; /* (n) */
  int64_t n;
  int64_t first; /* index in the files of images[0] (the offset it was opened with) */
  int c, h, w;
  void *map_images, *map_labels; /* internal */
  size_t map_images_len, map_labels_len;
} pt_dataset;

/* Opens images/labels files; offset and count are in images (count < 0: all after offset).
 * Labels must lie in [0, num_classes). */
pt_status pt_dataset_open_files(const char *images_path, const char *labels_path, int c, int h, int w,
                                int num_classes, int64_t offset, int64_t count, pt_dataset **out);
/* Opens <dir>/<split>_input.bin and <dir>/<split>_labels.bin (split: "tune" or "test"). */
pt_status pt_dataset_open(const char *dir, const char *split, int c, int h, int w, int num_classes, int64_t offset,
                          int64_t count, pt_dataset **out);
void pt_dataset_close(pt_dataset *ds);

/* ---- knob files (PredTuner's JSON format) ---- */
/* A knob declaration file (a JSON list of objects with "class", "name", the class's parameters,
 * "exp_speedup", optional "devices" and "baseline_priority"). Errors name the file, the knob and the
 * problem: unknown class, missing/extra/mistyped parameter, stride < 2, offset >= stride,
 * skip_every < 2, noise level outside 0-8, duplicate names. */
pt_status pt_knobs_load(const char *path, pt_knob_set **out);
/* Same from memory; `source` names the input in errors. */
pt_status pt_knobs_parse(const char *json, size_t len, const char *source, pt_knob_set **out);

/* ---- config files ---- */
/* A config as read from a file: (op name, knob name) pairs plus what was recorded about it. */
typedef struct pt_config {
  int n;
  char **ops, **knobs; /* n each */
  double qos, cost, test_qos, validated_qos; /* NAN when absent */
} pt_config;

typedef struct pt_config_list {
  int n;
  pt_config *configs;
} pt_config_list;

/* Reads our configs.json ({"configs": [{"knobs": {op: knob}, "qos", ...}]}) or PredTuner's
 * jsonpickle list ([{"py/object": ..., "knobs": {...}, "qos", ...}]). */
pt_status pt_configs_load(const char *path, pt_config_list **out);
pt_status pt_configs_parse(const char *json, size_t len, const char *source, pt_config_list **out);
void pt_configs_free(pt_config_list *l);

/* ---- files ---- */
/* Creates dir and its missing parents (mkdir -p). */
pt_status pt_make_dirs(const char *dir);
/* Writes data atomically to path (temp file in the same folder + rename). */
pt_status pt_write_file_atomic(const char *path, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
