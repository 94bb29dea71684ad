// Command coldstart measures Ordertune's cold start: the time from exec of
// `ordertune serve` to /readyz answering 200, on a migrated database. It is
// run by scripts/bench.sh inside `ordertune devdb`, which provides the
// cluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordertune/ordertune/internal/postgres"
	"github.com/ordertune/ordertune/internal/replicatest"
	"github.com/ordertune/ordertune/internal/seal"
)

func main() {
	adminURL := flag.String("admin-url", "", "superuser URL of the cluster's postgres database")
	db := flag.String("db", "bench_coldstart", "database to create and migrate")
	bin := flag.String("bin", ".bin/ordertune", "the ordertune binary")
	runs := flag.Int("runs", 5, "how many starts to time")
	flag.Parse()
	if err := run(*adminURL, *db, *bin, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

func run(adminURL, db, bin string, runs int) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return err
	}
	conn.Close(ctx)
	u, _ := url.Parse(adminURL)
	u.Path = "/" + db
	dbURL := u.String()
	if err := postgres.Migrate(dbURL); err != nil {
		return err
	}
	key, _ := seal.GenerateKey("bench")
	var times []time.Duration
	for i := 0; i < runs; i++ {
		addr, err := replicatest.LoopbackAddr()
		if err != nil {
			return err
		}
		cmd := exec.Command(bin, "serve")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "ORDERTUNE_MASTER_KEYS="+key,
			"ORDERTUNE_ADDR="+addr, "ORDERTUNE_LOG_LEVEL=warn")
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		ready := false
		for deadline := start.Add(30 * time.Second); time.Now().Before(deadline); {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ready = true
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
		d := time.Since(start)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if !ready {
			return fmt.Errorf("run %d: not ready within 30 s", i+1)
		}
		times = append(times, d)
		fmt.Printf("run %d: ready after %v\n", i+1, d.Round(time.Millisecond))
	}
	slices.Sort(times)
	fmt.Printf("cold start to ready: median %v, min %v, max %v over %d runs\n",
		times[len(times)/2].Round(time.Millisecond), times[0].Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), runs)
	return nil
}
