"""avuie.eval: each task's benchmark metric (pure functions over plain inputs), the `avuie eval` runner that
parses responses with the tag parser and scores them, the prompt-to-mask step, and the transfer report.

Modules: metrics_events (ave, avvp, unav), metrics_qa (avqa, avqa_thu, a2v/v2a), metrics_cls (ks, ucf, emotion
sets), metrics_seg (s4, ms3, ref_avs, arig), metrics_caption (avcap), masks (SAM2 / box fill), reading
(predictions and shards), scorers (per target kind, parsed predictions to metrics), runner (`avuie eval`),
transfer (`avuie transfer`). docs/METRICS.md names the reference each metric equals and the test that holds it.
"""
