package ibkrsim

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// maintenanceText is what the simulator answers while IBKR is restarting.
const maintenanceText = "Service Unavailable: the system is under maintenance"

// StartMaintenance begins one of IBKR's restart windows: every API call is
// answered 503 until EndMaintenance, and every brokerage session is gone
// afterwards (the live session tokens survive, as at IBKR's nightly reset).
func (s *Server) StartMaintenance() {
	s.maintenance.Store(true)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.consumers {
		c.mu.Lock()
		c.sess = brokerSession{}
		c.mu.Unlock()
	}
}

// EndMaintenance ends the restart window.
func (s *Server) EndMaintenance() { s.maintenance.Store(false) }

// InMaintenance reports whether a restart window is on.
func (s *Server) InMaintenance() bool { return s.maintenance.Load() }

// SetClockOffset moves the simulator's clock by d from its configured
// clock, for tests that drive a simulator in another process.
func (s *Server) SetClockOffset(d time.Duration) { s.clockOffset.Store(int64(d)) }

// now reads the configured clock, moved by the control API's offset.
func (s *Server) now() time.Time {
	return s.cfg.Clock().Add(time.Duration(s.clockOffset.Load()))
}

// maintenanceRoutes are the control API's restart window and clock.
func (s *Server) maintenanceRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /sim/maintenance/start", func(w http.ResponseWriter, r *http.Request) {
		s.StartMaintenance()
		writeJSON(w, http.StatusOK, map[string]bool{"maintenance": true})
	})
	m.HandleFunc("POST /sim/maintenance/end", func(w http.ResponseWriter, r *http.Request) {
		s.EndMaintenance()
		writeJSON(w, http.StatusOK, map[string]bool{"maintenance": false})
	})
	m.HandleFunc("GET /sim/maintenance", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"maintenance": s.InMaintenance()})
	})
	m.HandleFunc("POST /sim/clock", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Offset string    `json:"offset"`
			Now    time.Time `json:"now"`
		}
		if err := decodeJSON(r, &body); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
			return
		}
		var d time.Duration
		switch {
		case body.Offset != "" && !body.Now.IsZero():
			writeError(w, http.StatusBadRequest, "give offset or now, not both")
			return
		case body.Offset != "":
			var err error
			if d, err = time.ParseDuration(body.Offset); err != nil {
				writeError(w, http.StatusBadRequest, "offset: want a Go duration such as -2h")
				return
			}
		case !body.Now.IsZero():
			d = body.Now.Sub(s.cfg.Clock())
		}
		s.SetClockOffset(d)
		writeJSON(w, http.StatusOK, map[string]time.Time{"now": s.now().UTC()})
	})
}
