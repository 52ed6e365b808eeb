"""Cursor pagination for every list (contract §3): page_size defaults to 50, clamped to 100."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = "-created_at"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            value = int(raw)
        except ValueError:
            return self.page_size
        return max(1, min(value, self.max_page_size))


class OldestFirstCursorPagination(CursorPagination):
    ordering = ("created_at", "id")
