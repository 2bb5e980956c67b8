/* tallyd's native addon (build/Release/tallyd_native.node): udp_reader.c registers the module. */
#ifndef TALLYD_H
#define TALLYD_H
#include <node_api.h>

/* zmq_scan.c: adds zmqScan() to the exports; 0 on failure. */
int tallyd_zmq_scan_init(napi_env env, napi_value exports);
/* zmq_inflate.c: adds zmqInflate() to the exports; 0 on failure. */
int tallyd_zmq_inflate_init(napi_env env, napi_value exports);

#endif
