"""Chain-of-thought curation (`videorft curate`), VideoRFT's four-stage data pipeline.

    represent  the video at `fps` -> a structured JSON description (overall caption, per-frame
               captions, objects, actions, scene, spatial relations, ...), schema-checked
    reason     the description + the question -> a five-step chain of thought and an answer (text only)
    revise     the video + the question + the chain -> the chain with what conflicts with the frames fixed
    filter     keep chains whose answer is right (or semantically close), well-formed, of sane length,
               free of text-source phrases and not duplicated -> cot.jsonl (SFT records)

Every request goes through a content-addressed on-disk cache and every stage appends one line per
sample to <output_dir>/<stage>.jsonl, so a rerun after a crash repeats no finished call and writes no
line twice. Backends: any OpenAI-compatible server, offline vLLM, in-process transformers, and the
synthetic world's oracle.
"""
