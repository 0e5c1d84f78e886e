"""Reports: the pictures researchers look at before they trust a number.

* :mod:`~bench.report.run_report`: ``bench report RUN_ID``, its sections and the page;
* :mod:`~bench.report.ranking`: ranked lists of single queries, as evaluation ranks them;
* :mod:`~bench.report.cam`: attention maps (EigenGradCAM, EigenCAM, Grad-CAM);
* :mod:`~bench.report.tsne`: t-SNE of the embeddings;
* :mod:`~bench.report.rebuild`: a run's trained method back from its checkpoint;
* :mod:`~bench.report.page`: the HTML page;
* :mod:`~bench.report.figures`: the matplotlib figures, of known pixel sizes;
* :mod:`~bench.report.leaderboard_plots`: ``bench leaderboard --plot`` (reads only records);
* :mod:`~bench.report.extras`: the optional packages, asked for once.
"""
