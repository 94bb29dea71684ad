package ibkrsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ListenAndServe serves h on addr until ctx ends, then shuts down gracefully.
// ready, when non-nil, gets the bound address (useful with port 0).
func ListenAndServe(ctx context.Context, addr string, h http.Handler, ready func(addr string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("simulator listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("simulator serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("simulator shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("simulator serve: %w", err)
	}
	return nil
}

// PostConsumer registers c with a running simulator at base (its origin or
// its /v1/api URL) through POST /sim/consumers.
func PostConsumer(ctx context.Context, client *http.Client, base string, c Consumer) error {
	base = strings.TrimSuffix(strings.TrimSuffix(base, "/"), APIPrefix)
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("post consumer: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/sim/consumers", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post consumer: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post consumer: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("post consumer: simulator answered %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// AppendConsumersFile adds c to the consumers FILE at path, creating it when
// missing; the file is replaced atomically.
func AppendConsumersFile(path string, c Consumer) error {
	var list []Consumer
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(bytes.TrimSpace(data)) > 0 {
			if err := json.Unmarshal(data, &list); err != nil {
				return fmt.Errorf("append consumer to %s: %w", path, err)
			}
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return fmt.Errorf("append consumer to %s: %w", path, err)
	}
	for _, old := range list {
		if old.ConsumerKey == c.ConsumerKey {
			return fmt.Errorf("append consumer to %s: %s already present", path, c.ConsumerKey)
		}
	}
	list = append(list, c)
	out, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("append consumer to %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("append consumer to %s: %w", path, err)
	}
	return nil
}

// WriteFileAtomic writes data to a temporary file beside path and renames it
// over path, so readers never see half a file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
