{
  "targets": [
    {
      "target_name": "tallyd_native",
      "sources": ["src/native/udp_reader.c", "src/native/zmq_scan.c", "src/native/zmq_inflate.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", { "type": "none" }]]
    }
  ]
}
