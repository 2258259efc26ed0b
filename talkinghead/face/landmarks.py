"""Named MediaPipe face-mesh landmark ids and ARKit blendshape names.

Ids index the 478-point FaceLandmarker mesh (468 face points + 10 iris points). "Left" and "right"
are the subject's own: the subject's left eye appears on the image's right.
"""

N_LANDMARKS = 478

# Lips, ordered from the subject's right mouth corner to the left one.
LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_LOOP = LIPS_UPPER_INNER + tuple(reversed(LIPS_LOWER_INNER[1:-1]))
LIPS_OUTER_LOOP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
                   375, 321, 405, 314, 17, 84, 181, 91, 146)
MOUTH_CORNER_RIGHT = 61
MOUTH_CORNER_LEFT = 291
LIP_UPPER_INNER_MID = 13
LIP_LOWER_INNER_MID = 14

# Eyes: contour loops and the lid points paired top/bottom, outer corner to inner corner.
EYE_RIGHT_LOOP = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
EYE_LEFT_LOOP = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
EYE_RIGHT_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)
EYE_RIGHT_LOWER_LID = (7, 163, 144, 145, 153, 154, 155)
EYE_LEFT_UPPER_LID = (466, 388, 387, 386, 385, 384, 398)
EYE_LEFT_LOWER_LID = (249, 390, 373, 374, 380, 381, 382)
EYE_RIGHT_OUTER_CORNER = 33
EYE_LEFT_OUTER_CORNER = 263
ORBITALE = (119, 348)  # right, left: below each eye, on the orbit's lower rim (the Frankfurt plane's front)
EAR_LEVEL_OUTLINE = (234, 454)  # right, left: the face outline beside the ears (near the tragion, its back)
EYE_RIGHT_INNER_CORNER = 133
EYE_LEFT_INNER_CORNER = 362
# the ring just above each upper lid (top of the lashes and liner), paired with the lid points above
EYE_RIGHT_LID_FOLD = (247, 30, 29, 27, 28, 56, 190)
EYE_LEFT_LID_FOLD = (467, 260, 259, 257, 258, 286, 414)
# the ring under each brow (the lid's crease), paired with the lid points below
EYE_RIGHT_CREASE = (113, 225, 224, 223, 222, 221, 189)
EYE_LEFT_CREASE = (342, 445, 444, 443, 442, 441, 413)
# points around each eye that neither a blink nor gaze moves (corners, the ring below the lower lid):
# the eyeball's frame
EYE_RIGHT_FRAME = (33, 133, 130, 25, 110, 24, 23, 22, 26, 112, 243)
EYE_LEFT_FRAME = (263, 362, 359, 255, 339, 254, 253, 252, 256, 341, 463)
IRIS_RIGHT = (468, 469, 470, 471, 472)  # centre first
IRIS_LEFT = (473, 474, 475, 476, 477)

BROW_RIGHT = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
BROW_LEFT = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
             54, 103, 67, 109)
NOSE_BRIDGE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 129, 358)
# every point on or between the lips (the four lip rings of the mesh)
LIPS_ALL = LIPS_INNER_LOOP + LIPS_OUTER_LOOP + (76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306,
                                                  183, 42, 41, 38, 12, 268, 271, 272, 407,
                                                  77, 90, 180, 85, 16, 315, 404, 320, 307,
                                                  96, 89, 179, 86, 15, 316, 403, 319, 325, 62, 292)
NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10

# Points that move little with expression: forehead, nose bridge, eye corners, temples.
# Head pose is the similarity transform that best aligns these.
RIGID_POINTS = (10, 338, 109, 67, 297, 103, 332, 54, 151, 9, 8, 168, 6, 197, 195, 5, 4,
                33, 133, 263, 362, 127, 356, 234, 454, 162, 389, 21, 251)

# The 52 ARKit blendshape names, in MediaPipe's order (MediaPipe's first score, "_neutral",
# is dropped and ARKit's "tongueOut", which MediaPipe does not estimate, is appended).
BLENDSHAPE_NAMES = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)
N_BLENDSHAPES = len(BLENDSHAPE_NAMES)
BLENDSHAPE_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}

# Coefficients the renderer draws geometrically instead of through the fitted basis:
# blinks close the lids fully, and gaze moves the irises (Motion.gaze carries it).
BLINK_COEFFS = ("eyeBlinkLeft", "eyeBlinkRight")
GAZE_COEFFS = tuple(n for n in BLENDSHAPE_NAMES if n.startswith("eyeLook"))
