"""The malmoi distribution: Beam jobs, the kd trainer and the data schemas.

This is also what Dataflow workers install (``--setup_file ./setup.py``), so it
must carry everything the jobs import at run time, lexicons included.
"""

from setuptools import find_packages, setup

VERSION = "0.1.0"

# Beam 2.77 caps pyarrow and numpy; everything else the jobs import is pinned
# to the releases the project was tested with.
INSTALL_REQUIRES = [
    "apache-beam==2.77.0",
    "pyarrow>=14,<26",
    "numpy>=1.24,<2.5",
    "pandas>=2.0,<2.4",
    "soynlp==0.0.493",
    "kiwipiepy>=0.24,<0.25",
    "openpyxl>=3.1,<4",
]

EXTRAS_REQUIRE = {
    # Teacher and student models; a range so GPU users keep their CUDA build.
    # Install torch yourself first (`pip install torch==2.13.0` for the CPU build, or your CUDA
    # build): the range below then leaves it alone.
    "train": ["torch>=2.4", "transformers>=5.17,<6", "tokenizers>=0.23,<0.24", "safetensors>=0.8,<0.9",
              "accelerate>=1.10,<2", "matplotlib>=3.8,<4", "tqdm>=4.66,<5", "scikit-learn>=1.5,<2"],
    # Dataflow and gs:// (Beam's GCS client); gcsfs so pandas / datasets open gs:// outputs too
    "dataflow": ["apache-beam[gcp]==2.77.0", "gcsfs==2026.2.0"],
    # s3:// in the jobs (Beam's S3 filesystem, boto3); the trainer and schemas/ reach s3:// through pyarrow
    "aws": ["apache-beam[aws]==2.77.0"],
    # the tests run every stage against a local GCS emulator and a local S3 endpoint (moto) and
    # translate Dataflow jobs offline (datasets pins fsspec 2026.2.0, hence that gcsfs); datasets:
    # outputs open with Hugging Face
    "dev": ["pytest>=8", "ruff>=0.6", "setuptools>=68", "hypothesis>=6.100,<7", "apache-beam[gcp,aws]==2.77.0",
            "gcsfs==2026.2.0", "gcp-storage-emulator==2026.7.19", "moto[server]==5.2.5", "datasets==4.8.5",
            "seqeval==1.2.2"],
    # the normalizer arena's peers (bench/normalizer_arena.py); KoNLPy also needs a Java runtime
    # (Debian's default-jre-headless: `make bench-setup` installs both)
    "bench": ["kss==6.0.6", "konlpy==0.6.0"],
}

setup(
    name="malmoi",
    version=VERSION,
    description="Korean spoken and colloquial text: Beam preprocessing, teacher augmentation "
    "and knowledge distillation into small students.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["beam_jobs", "beam_jobs.*", "kd", "kd.*", "schemas", "schemas.*"]),
    package_data={"beam_jobs.text.lexicons": ["*.tsv"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={
        "console_scripts": [
            "malmoi-preprocess=beam_jobs.preprocess:main",
            "malmoi-learn-words=beam_jobs.learn_words:main",
            "malmoi-normalize=beam_jobs.normalize:main",
            "malmoi-distill=kd.distill:main",
            "malmoi-predict=kd.predict:main",
        ]
    },
)
