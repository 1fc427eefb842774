#!/usr/bin/env bash
# Regenerates every sample in this folder from generated signals (ffmpeg lavfi sources, synthesized
# tones, rendered text) and small Python writers for the document formats. Deterministic apart
# from encoder version differences. Needs ffmpeg, exiftool and python3.
#   bash samples/make-samples.sh            # writes into samples/media/
set -euo pipefail
cd "$(dirname "$0")/media"
ff() { ffmpeg -hide_banner -loglevel error -y -bitexact "$@"; }

# Images: a 320x240 test pattern (testsrc2) with a caption, one frame.
pat=(-f lavfi -i "testsrc2=size=320x240:rate=1,drawbox=x=20:y=180:w=280:h=40:color=white@0.8:t=fill" -frames:v 1)
ff "${pat[@]}" -q:v 3 image.jpg                       # baseline JPEG with a JFIF APP0
ff "${pat[@]}" image.png                              # RGB PNG
ff "${pat[@]}" -c:v libwebp -lossless 0 -q:v 75 image-lossy.webp    # simple VP8 WebP
ff "${pat[@]}" -c:v libwebp -lossless 1 image.webp    # simple VP8L WebP
ff "${pat[@]}" -pix_fmt rgb8 image.gif                # single-frame GIF89a
ff -f lavfi -i "testsrc2=size=160x120:rate=5" -frames:v 5 -pix_fmt rgb8 image-animated.gif
ff "${pat[@]}" -compression_algo deflate image.tif    # little-endian TIFF
ff "${pat[@]}" image.bmp
# A JPEG that already carries EXIF and XMP (written by exiftool) to prove merging keeps them.
cp image.jpg image-exif-xmp.jpg
exiftool -q -overwrite_original -EXIF:Make=SampleCam -EXIF:Model=Gen1 -EXIF:Orientation#=1 \
  -XMP-dc:Title="sample title" -XMP-dc:Creator="aigc-mark samples" image-exif-xmp.jpg
cp image.png image-xmp.png
exiftool -q -overwrite_original -XMP-dc:Title="sample title" image-xmp.png

# Video: 2 s of testsrc2 at 10 fps with a 440 Hz tone.
vsrc=(-f lavfi -i "testsrc2=size=320x240:rate=10" -f lavfi -i "sine=frequency=440:sample_rate=44100" -t 2)
ff "${vsrc[@]}" -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 64k -movflags +faststart video.mp4   # moov before mdat
ff "${vsrc[@]}" -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 64k video-moov-last.mp4            # moov after mdat
ff "${vsrc[@]}" -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 64k -f mov video.mov
ff "${vsrc[@]}" -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 64k video.mkv
ff "${vsrc[@]}" -c:v libvpx -b:v 200k -c:a libopus -b:a 48k video.webm
ff "${vsrc[@]}" -c:v mpeg4 -q:v 5 -c:a libmp3lame -b:a 64k video.avi
ff "${vsrc[@]}" -c:v flv1 -q:v 5 -c:a libmp3lame -ar 44100 -b:a 64k video.flv

# Audio: 2 s of a two-tone chord (stereo) or a chirp-like sine sweep (mono).
asrc=(-f lavfi -i "sine=frequency=440:sample_rate=44100,aformat=channel_layouts=mono" -f lavfi -i "sine=frequency=660:sample_rate=44100" -filter_complex "[0][1]amerge=inputs=2" -t 2)
ff "${asrc[@]}" -c:a pcm_s16le audio.wav
ff "${asrc[@]}" -c:a libmp3lame -b:a 96k -id3v2_version 4 -metadata title="sample tone" audio.mp3
ff "${asrc[@]}" -c:a flac audio.flac
ff "${asrc[@]}" -c:a libvorbis -q:a 3 audio.ogg
ff "${asrc[@]}" -c:a libopus -b:a 48k audio.opus
ff "${asrc[@]}" -c:a aac -b:a 64k audio.m4a

# Documents and text: written by a small Python program (no office suite needed).
python3 ../make_documents.py

ls -l
