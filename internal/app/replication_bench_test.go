package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// BenchmarkReadsWithReplicas measures API reads per second (summary, list,
// one campaign; the cache off, so every read reaches a database) with the
// primary alone and with two streaming replicas, all on this machine:
//
//	go test ./internal/app -run '^$' -bench BenchmarkReadsWithReplicas -benchtime 10s
func BenchmarkReadsWithReplicas(b *testing.B) {
	for _, n := range []int{0, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			rep := pgtest.StartReplication(b, pgtest.ReplicationOptions{Replicas: n})
			a := newAppOn(b, rep.PrimaryURL, map[string]string{
				"DATABASE_REPLICA_URLS": replicaURLs(rep), "CACHE_DISABLED": "true", "LOG_LEVEL": "error",
			})
			key := newUser(b, a, fmt.Sprintf("bench%d@example.com", n))
			var c struct{ ID string }
			emails := `{"name":"Bench","emails":[`
			for i := range 200 {
				if i > 0 {
					emails += ","
				}
				emails += fmt.Sprintf(`{"recipient":"r%d@example.com","subject":"s","body":"b"}`, i)
			}
			mustCall(b, a, "POST", "/api/v1/campaigns", key, emails+`]}`, http.StatusCreated, &c)
			for range 10 {
				mustCall(b, a, "POST", "/api/v1/campaigns", key, `{"name":"Other"}`, http.StatusCreated, nil)
			}
			if err := rep.WaitReplayed(b.Context()); err != nil {
				b.Fatal(err)
			}
			paths := []string{"/api/v1/campaigns/" + c.ID + "/summary", "/api/v1/campaigns?limit=20", "/api/v1/campaigns/" + c.ID}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					// A reader that did not just write: no read-your-writes
					// floor, so replicas serve it.
					if code, body := call(b, a, "GET", paths[i%len(paths)], key, ""); code != http.StatusOK {
						b.Errorf("%s: %d %s", paths[i%len(paths)], code, body)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
			// Where the reads went (the first moments after set-up go to the
			// primary until a health check sees the replicas replay the
			// set-up's writes).
			_, m := call(b, a, "GET", "/metrics", "", "")
			for _, l := range strings.Split(string(m), "\n") {
				if strings.HasPrefix(l, "replyrocket_db_reads_total") {
					b.Log(l)
				}
			}
		})
	}
}
