"""The exact sentences the API answers with, shared by the tests that expect them."""

TOO_BIG = "The upload is larger than the limit of 5.0 MB: send a smaller image."
NOT_IMAGE = "The upload is not a supported image: send a PNG, JPEG, GIF, BMP, WebP or TIFF file."
CORRUPT = "The image is truncated or corrupt and could not be decoded: export it again and retry."
EMPTY = "The uploaded file is empty: send a PNG, JPEG, GIF, BMP, WebP or TIFF image of a digit."
BLANK = "No digit found in the image (the image is blank or has too little contrast): draw or photograph a digit in dark or bright ink."
NOISE = "No digit found in the image (the image looks like random noise): draw or photograph a digit in dark or bright ink."
OVER_PIXEL_LIMIT = "The image has too many pixels (the image has more than 25,000,000 pixels): scale it down and retry."
TOO_NARROW = (
    "No digit found in the image (the image is only 1 pixel(s) across, too narrow to hold a digit): draw or photograph a digit in dark or bright ink."
)
ONE_IMAGE = "Send one image in the field 'file'; use /predict/batch with field 'files' for several."
