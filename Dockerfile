# The trucewatch application image: one image, one process per container (poll | worker | sink | topics ...).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . /app
# python:3.11-slim has no C compiler: the optional accelerators (processors._fast and the mypyc builds of
# processors/visits.py and classify.py, setup.py) are skipped and the classifier runs its pure-Python path (same
# results, ~2.3x slower per article; see BENCHMARKS.md). Add `apt-get install -y gcc` before this step to build them.
# Editable install: the analyst-editable YAML under /app/config is found beside the packages
# (trucewatch.settings.PACKAGE_CONFIG_DIR), and can be overridden by mounting TRUCEWATCH_CONFIG_DIR.
RUN pip install -e '.[rocksdb]' \
 && useradd --system --uid 10001 --home-dir /var/lib/trucewatch trucewatch \
 && mkdir -p /var/lib/trucewatch \
 && chown trucewatch /var/lib/trucewatch

USER trucewatch
ENV TRUCEWATCH_DATA_DIR=/var/lib/trucewatch \
    TRUCEWATCH_METRICS_HOST=0.0.0.0

ENTRYPOINT ["trucewatch"]
CMD ["--help"]
