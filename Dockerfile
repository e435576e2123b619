# The runreview app image. Build: docker build -t runreview .
FROM python:3.11-slim

# Pango/HarfBuzz for WeasyPrint (PDF reports); DejaVu fonts embedded in the PDFs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 libharfbuzz0b \
      fonts-dejavu-core git \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 runreview
WORKDIR /srv/runreview
COPY pyproject.toml requirements.lock README.md ./
RUN pip install --no-cache-dir uv \
 && uv pip install --system --no-cache -r requirements.lock
COPY runreview ./runreview
COPY reports ./reports
COPY app ./app
COPY .streamlit ./.streamlit
RUN uv pip install --system --no-cache --no-deps .

USER runreview
ENV RUNREVIEW_DEMO_DIR=/home/runreview/demo-workspace \
    RUNREVIEW_CACHE_DIR=/home/runreview/.cache/runreview
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read()==b'ok' else 1)"
# Sources come from MLFLOW_TRACKING_URI / RUNREVIEW_LOGDIR; the demo is built when none.
CMD ["runreview", "app", "--address", "0.0.0.0", "--port", "8501"]
