package loadtest

import (
	"testing"
	"time"
)

// wrk 4.1's report, as `wrk -t2 -c32 -d8s --latency` prints it.
const wrkOutput = `Running 8s test @ http://127.0.0.1:41234/api/v1/campaigns/x
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms    1.51ms  30.12ms   90.12%
    Req/Sec    17.50k     1.20k   20.10k    70.00%
  Latency Distribution
     50%  541.00us
     75%    1.02ms
     90%    2.31ms
     99%    7.88ms
  278543 requests in 8.00s, 120.41MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  34817.87
Transfer/sec:     15.05MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk([]byte(wrkOutput))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 278543 || r.RPS < 34817 || r.RPS > 34818 || r.P50 != 541*time.Microsecond ||
		r.P99 != 7880*time.Microsecond || r.Errors != "3× non-2xx" {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parseWrk([]byte("unable to connect to 127.0.0.1:1 Connection refused\n")); err == nil {
		t.Fatal("wrk's failure parsed as a result")
	}
}
