/*
 * Inflating a ZeroMQ status message (zlib, RFC 1950) into the caller's
 * Buffer with one z_stream kept per Node environment and reset between
 * messages. node:zlib's inflateSync builds a zlib object (and its 32 KiB
 * window) and a new output Buffer for every call: with 100-item messages
 * that was a fifth of the ZeroMQ path's CPU. zlib comes from Node itself,
 * which re-exports its symbols for addons.
 *
 *   zmqInflate(frame, out) -> n >= 0: the whole stream inflated into out[0, n), every input byte used
 *                             -1: out is too small (the caller grows it, up to its limit, and calls again)
 *                             -2: anything else (bad data, a truncated stream, bytes after its end): the
 *                                 caller inflates with node:zlib, which gives the exact verdict and message
 *
 * Only a clean, complete stream is answered here, so the result is always
 * the one inflateSync would give.
 */
#include <stdlib.h>
#include <string.h>

#include <node_api.h>
#include <zlib.h>

#include "tallyd.h"

typedef struct {
  z_stream zs;
  int ready;
} inflater_t;

static void free_inflater(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  inflater_t *in = (inflater_t *)data;
  if (in->ready) inflateEnd(&in->zs);
  free(in);
}

static napi_value ZmqInflate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_value result;
  void *data = NULL;
  inflater_t *in = NULL;
  void *src, *dst;
  size_t src_len, dst_len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok || argc < 2 ||
      napi_get_buffer_info(env, argv[0], &src, &src_len) != napi_ok || napi_get_buffer_info(env, argv[1], &dst, &dst_len) != napi_ok ||
      napi_get_instance_data(env, (void **)&in) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "zmqInflate(frame, out): two Buffers");
    return NULL;
  }
  int32_t n = -2;
  if (in != NULL && src_len <= 0xffffffffu && dst_len <= 0x7fffffffu) {
    int rc = Z_OK;
    if (!in->ready) {
      memset(&in->zs, 0, sizeof in->zs);
      rc = inflateInit(&in->zs);
      in->ready = rc == Z_OK;
    } else {
      rc = inflateReset(&in->zs);
    }
    if (rc == Z_OK) {
      in->zs.next_in = (Bytef *)src;
      in->zs.avail_in = (uInt)src_len;
      /* A Buffer of 0 bytes may have no memory at all: zlib takes a NULL next_out as a stream error even with
         avail_out 0, so give it a place that holds nothing (an empty message then inflates to 0 bytes; any other
         says out is too small). */
      static Bytef nowhere;
      in->zs.next_out = dst_len > 0 ? (Bytef *)dst : &nowhere;
      in->zs.avail_out = (uInt)dst_len;
      rc = inflate(&in->zs, Z_FINISH);
      if (rc == Z_STREAM_END && in->zs.avail_in == 0) n = (int32_t)(dst_len - in->zs.avail_out);
      else if ((rc == Z_OK || rc == Z_BUF_ERROR) && in->zs.avail_out == 0) n = -1; /* out of room, the stream goes on */
    }
  }
  if (napi_create_int32(env, n, &result) != napi_ok) return NULL;
  return result;
}

int tallyd_zmq_inflate_init(napi_env env, napi_value exports) {
  inflater_t *in = (inflater_t *)calloc(1, sizeof *in);
  if (in == NULL || napi_set_instance_data(env, in, free_inflater, NULL) != napi_ok) {
    free(in);
    return 0;
  }
  napi_property_descriptor prop = {"zmqInflate", NULL, ZmqInflate, NULL, NULL, NULL, napi_default, NULL};
  return napi_define_properties(env, exports, 1, &prop) == napi_ok;
}
