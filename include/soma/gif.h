// soma/gif.h — animated GIFs (giflib): RGB frames in, one looping GIF out.
//
// GifWriter streams frames to a temporary file next to `path` and renames it into place in
// finish(), so a reader never sees half a GIF (a writer destroyed without finish() removes its
// temporary file). Each frame gets its own colour table: exact when the frame has at most 256
// colours (drawings, plots), else a 6x7x6 colour cube. Frames show for `delay_cs` hundredths of
// a second; the animation loops forever (NETSCAPE2.0 extension).
//
//     soma::GifWriter gif("episode.gif", 320, 200, {.delay_cs = 4});
//     for (int i = 0; i < 50; ++i) { soma::Canvas c(320, 200); c.rect(i, 10, i + 20, 30, 0xff0000,
//     true);
//                                    gif.add_frame(c); }
//     gif.finish();
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "soma/image.h"

namespace soma {

struct GifOptions {
    int delay_cs = 4;  // hundredths of a second per frame
    int loop = 0;      // times to repeat (0 = forever)
};

class GifWriter {
  public:
    /// Opens the temporary file; throws soma::Error naming `path` when it cannot (missing
    /// directory, no permission) or when width / height are not in 1..65535.
    GifWriter(const std::string& path, int width, int height, GifOptions options = {});
    ~GifWriter();
    GifWriter(const GifWriter&) = delete;
    GifWriter& operator=(const GifWriter&) = delete;

    /// One frame of width * height RGB triples, row-major (3 bytes per pixel).
    void add_frame(const uint8_t* rgb);
    /// A canvas of the writer's size (throws ValueError on another size).
    void add_frame(const Canvas& canvas);
    /// Closes the file and renames it to `path`. At least one frame is required.
    void finish();
    int64_t frames() const { return frames_; }

  private:
    struct State;
    std::unique_ptr<State> s_;
    std::string path_, tmp_;
    int width_, height_;
    GifOptions options_;
    int64_t frames_ = 0;
    bool finished_ = false;
};

/// Writes canvases (all the same size) as one looping GIF, atomically.
void write_gif(const std::string& path, const std::vector<Canvas>& frames, GifOptions options = {});

}  // namespace soma
