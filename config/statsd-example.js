/*
An Etsy statsd 0.9 config, written as for statsd itself (compare statsd's
exampleConfig.js): tallyd loads it unchanged. Tests use it to prove that.

Run it with statsd:  node node_modules/statsd/stats.js config/statsd-example.js
Run it with tallyd:  node dist/main.js config/statsd-example.js

statsd evaluates `config = ` + this file; tallyd reads it as JSON5 without
running it. The parentheses keep the file valid JavaScript for linters;
statsd's own exampleConfig.js, a bare `{ ... }`, loads as well.
*/
// eslint-disable-next-line @typescript-eslint/no-unused-expressions -- statsd evaluates `config = ` + this file
({
  graphitePort: 2003
, graphiteHost: "graphite.example.com"
, port: 8125
, backends: [ "./backends/graphite" ]
, flushInterval: 10000
, percentThreshold: [ 90, 99, -10 ]
, deleteIdleStats: true
, deleteGauges: false      // overrides deleteIdleStats for gauges only
, gaugesMaxTTL: 3
, prefixStats: 'statsd'
, histogram: [
    { metric: 'render', bins: [ 0.01, 0.1, 1, 10, 'inf' ] },
    { metric: '', bins: [ 50, 100, 150, 200, 'inf' ] },
  ]
, graphite: {
    legacyNamespace: false
  , globalPrefix: "stats"
  , globalSuffix: "web01"
  }
, servers: [
    { server: "./servers/udp", address: "0.0.0.0", port: 8125 }
  , { server: "./servers/tcp", address: "0.0.0.0", port: 8125 }
  , { port: 8127, address: "::", address_ipv6: true }
  ]
})
