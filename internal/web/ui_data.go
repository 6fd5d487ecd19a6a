package web

// uiDataRoutes are the pages of this area (see ui_app.go).
func (s *Server) uiDataRoutes() []UIRoute {
	return nil
}
