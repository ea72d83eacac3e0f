"""Everything users see: format writers, progress, views, pictures and the HTML report."""
