package api

import "net/http"

// Placeholders until the control-plane handlers land (control.go replaces this file).
func notYet(w http.ResponseWriter, r *http.Request, _ []byte) error {
	return errorf(CodeUnknownOperation, "not implemented")
}

var (
	_ = notYet
)

func (s *Server) createFunction(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) listFunctions(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) getFunction(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) deleteFunction(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) getFunctionConfiguration(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) updateFunctionCode(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) publishVersion(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) listVersions(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) createAlias(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) listAliases(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) getAlias(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) updateAlias(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) deleteAlias(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) putConcurrency(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) deleteConcurrency(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) getConcurrency(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) putEventInvokeConfig(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) getEventInvokeConfig(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
func (s *Server) deleteEventInvokeConfig(w http.ResponseWriter, r *http.Request, b []byte) error {
	return notYet(w, r, b)
}
