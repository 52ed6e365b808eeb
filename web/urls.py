"""URL patterns (filled in by this app)."""

urlpatterns = []
