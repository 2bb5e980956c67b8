{
  "targets": [
    {
      "target_name": "tallyd_udp",
      "sources": ["src/native/udp_reader.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", { "type": "none" }]]
    }
  ]
}
