"""vf-view: a static HTML page for saved vf-eval and vf-train runs (``runs``: reading the run
folders; ``page``: the page, with its script and styles in ``assets/``)."""
