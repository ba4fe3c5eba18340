"""Media: ffmpeg.py (probe a file, cut clips and audio), images.py (images, masks, geometry, palette), synth.py
(synthesized test media). Imports nothing else of ours."""
