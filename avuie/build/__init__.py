"""The build: plan shards, cut media (cutting.py), assemble and write samples (pipeline.py), scan raw trees,
validate finished builds."""
